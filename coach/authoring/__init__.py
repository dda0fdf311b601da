"""The authors' and maintainers' checks: `make check` (check), the author's contract for each
kata (units), the platform claims of CI (platforms), actionlint on the
workflows (actionlint), and `make bench`.

The top layer: may import every other package; nothing imports it.
"""
