import pytest

from models import registry, verify


@pytest.mark.parametrize("name", sorted(registry()))
def test_registered_weights_match_their_sha256(name):
    assert verify(name).is_file()
