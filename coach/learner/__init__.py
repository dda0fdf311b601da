"""The commands a learner types: make test, watch, progress, next, hint, predict, graph, plots,
solution, reset, stop, and the state they keep in .coach/; the coach server that answers them
warm (server, client) and the warm parent it shares with watch (warm).

May import coach.core and coach.runtime. Never used by grading: a grade never depends on a
learner's hints, answers or state.
"""
