"""One teaching unit per kata (see coach/core/lesson.py): hints, quiz, graph views, points."""
