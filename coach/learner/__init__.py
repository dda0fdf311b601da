"""The commands a learner types: make test, watch, progress, next, hint, predict, graph, plots,
solution, reset, and the state they keep in .coach/.

May import coach.core and coach.runtime. Never used by grading: a grade never depends on a
learner's hints, answers or state.
"""
