"""The course itself, for everyone: which katas exist and in what order (registry), what a
kata's teaching unit holds (lesson), where files are (paths), the project's Python (bootstrap)
and how a command's function is called (command).

Standard library only, and imports nothing else from coach: every other package builds on it,
and `make hint` or the bootstrap must work before torch or pytest are installed.
"""
