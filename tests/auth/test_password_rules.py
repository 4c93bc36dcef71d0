"""The password policy (service.auth.passwords.password_problems): properties and examples.

Policy: 10 to 128 characters; at least three of lower case, upper case, digits and
other characters; not containing the username (in any case).
"""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.auth.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    hash_password,
    password_problems,
    verify_password,
)
from tests.support import PASSWORD

TOO_SHORT = f"长度至少 {MIN_LENGTH} 位"
TOO_LONG = f"长度不超过 {MAX_LENGTH} 位"
FEW_CLASSES = "须包含小写字母、大写字母、数字、符号中的至少三类"
HAS_USERNAME = "不能包含用户名"
ORDER = [TOO_SHORT, TOO_LONG, FEW_CLASSES, HAS_USERNAME]

SYMBOLS = string.punctuation + " "
CLASSES = [string.ascii_lowercase, string.ascii_uppercase, string.digits, SYMBOLS]
ASCII = "".join(CLASSES)

ascii_text = st.text(alphabet=ASCII, max_size=MAX_LENGTH + 20)
any_text = st.text(max_size=MAX_LENGTH + 20)
# Usernames as create_account allows them: 3-64 of [a-z0-9_.-].
usernames = st.text(
    alphabet=string.ascii_lowercase + string.digits + "_.-", min_size=3, max_size=64
)


def model(password: str, username: str = "") -> list[str]:
    """The policy, written independently, for ASCII passwords."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(TOO_SHORT)
    if len(password) > MAX_LENGTH:
        problems.append(TOO_LONG)
    if sum(any(c in chars for c in password) for chars in CLASSES) < 3:
        problems.append(FEW_CLASSES)
    if username and username.lower() in password.lower():
        problems.append(HAS_USERNAME)
    return problems


@st.composite
def good_passwords(draw: st.DrawFn) -> str:
    """Passwords the policy accepts by construction: three or four classes, each used at
    least once, within the length bounds."""
    classes = draw(st.sampled_from([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3], [0, 1, 2, 3]]))
    alphabet = "".join(CLASSES[i] for i in classes)
    required = [draw(st.sampled_from(CLASSES[i])) for i in classes]
    rest = draw(
        st.text(
            alphabet=alphabet,
            min_size=MIN_LENGTH - len(required),
            max_size=MAX_LENGTH - len(required),
        )
    )
    chars = draw(st.permutations([*required, *rest]))
    return "".join(chars)


# -- properties ----------------------------------------------------------------------------


@given(ascii_text, st.one_of(st.just(""), usernames))
def test_matches_the_policy_on_ascii(password: str, username: str) -> None:
    assert password_problems(password, username=username) == model(password, username)


@given(any_text, st.one_of(st.just(""), usernames))
def test_problems_come_in_a_fixed_order_without_repeats(password: str, username: str) -> None:
    problems = password_problems(password, username=username)
    assert problems == [p for p in ORDER if p in problems]
    assert not (TOO_SHORT in problems and TOO_LONG in problems)


@given(any_text)
def test_length_rules_hold_for_any_text(password: str) -> None:
    problems = password_problems(password)
    assert (TOO_SHORT in problems) == (len(password) < MIN_LENGTH)
    assert (TOO_LONG in problems) == (len(password) > MAX_LENGTH)


@given(good_passwords())
def test_passwords_built_to_the_policy_pass(password: str) -> None:
    assert password_problems(password) == []


@given(good_passwords(), usernames)
def test_a_good_password_fails_only_for_the_username(password: str, username: str) -> None:
    problems = password_problems(password, username=username)
    expected = [HAS_USERNAME] if username in password.lower() else []
    assert problems == expected


@given(any_text, usernames, any_text, st.booleans())
def test_containing_the_username_is_always_reported(
    before: str, username: str, after: str, shout: bool
) -> None:
    password = before + (username.upper() if shout else username) + after
    assert HAS_USERNAME in password_problems(password, username=username)
    # The username's case does not matter either.
    assert HAS_USERNAME in password_problems(password, username=username.upper())


@given(any_text)
def test_no_username_no_username_problem(password: str) -> None:
    assert HAS_USERNAME not in password_problems(password, username="")


@given(any_text, any_text)
def test_more_characters_never_lose_a_class(password: str, more: str) -> None:
    if FEW_CLASSES not in password_problems(password):
        assert FEW_CLASSES not in password_problems(password + more)
        assert FEW_CLASSES not in password_problems(more + password)


@given(good_passwords(), st.integers(min_value=0, max_value=MIN_LENGTH - 1))
def test_any_good_password_cut_short_is_too_short(password: str, keep: int) -> None:
    assert TOO_SHORT in password_problems(password[:keep])


@given(good_passwords(), st.integers(min_value=1, max_value=50))
def test_any_good_password_padded_too_long_is_too_long(password: str, extra: int) -> None:
    padded = password + "x" * (MAX_LENGTH - len(password) + extra)
    assert password_problems(padded) == [TOO_LONG]


# -- worked examples -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "username", "problems"),
    [
        (PASSWORD, "", []),  # the tests' own password: all four classes
        ("Abcdefgh1!", "", []),  # exactly 10
        ("Abcdefg1!", "", [TOO_SHORT]),  # 9
        ("Aa1" + "b" * (MAX_LENGTH - 3), "", []),  # exactly 128
        ("Aa1" + "b" * (MAX_LENGTH - 2), "", [TOO_LONG]),  # 129
        ("", "", [TOO_SHORT, FEW_CLASSES]),
        ("a", "", [TOO_SHORT, FEW_CLASSES]),
        ("onlylowercaseletters", "", [FEW_CLASSES]),
        ("lowercase123", "", [FEW_CLASSES]),  # two classes
        ("lowercase123!", "", []),  # three: lower, digit, symbol
        ("UPPERCASE123!", "", []),  # three: upper, digit, symbol
        ("Lower Upper Space", "", []),  # a space is a symbol
        ("NoDigitsNoSymbols", "", [FEW_CLASSES]),
        ("Zhangsan-2024!", "zhangsan", [HAS_USERNAME]),
        ("zhangsan", "zhangsan", [TOO_SHORT, FEW_CLASSES, HAS_USERNAME]),
        ("my-ZHANGSAN-2024", "zhangsan", [HAS_USERNAME]),  # case-insensitive
        ("Zhang-san-2024!", "zhangsan", []),  # split up, it is not contained
        ("Test-Passw0rd!", "t1a2b3c4.county", []),
        ("中文密码Password1", "", []),  # lower, upper, digit
        # As implemented, CJK characters count in no class (not as "symbols"): a
        # Chinese passphrase with only lower and upper letters is refused.
        ("党员民主评议Password", "", [FEW_CLASSES]),
        ("中文中文中文中文中文", "", [FEW_CLASSES]),
    ],
)
def test_examples(password: str, username: str, problems: list[str]) -> None:
    assert password_problems(password, username=username) == problems


def test_hash_and_verify() -> None:
    hashed = hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$")
    assert PASSWORD not in hashed
    assert hash_password(PASSWORD) != hashed  # salted
    assert verify_password(hashed, PASSWORD)
    assert not verify_password(hashed, PASSWORD + "x")
    # No account (None) and a corrupt hash are refusals, not errors.
    assert not verify_password(None, PASSWORD)
    assert not verify_password("not-a-hash", PASSWORD)
