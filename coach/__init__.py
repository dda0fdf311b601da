"""The tooling around the katas: loading, running, reporting. Not part of any kata."""
