"""One teaching unit per kata (see coach/lesson.py): hints, quiz, graph views, points."""
