"""Semantic roles: what a column *means* (a first name, an e-mail, a postal code, a key).

A role tells the twin how to produce values that no DP statistic can give: the long tail of a
name column, the e-mail of each row, a key. Role values come from Faker (a `locale` setting) or a
declared format pattern, never from real values, so they cost no ε. Roles are registered by
name (`register`), and the config's accepted role names are derived from the registry.

`propose_role` is what `dbt-synth init` writes into the generated yml: it looks at a column's
name, SQL type and tests only — never at its values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache

import numpy as np

# Roles that shape how a column is modelled rather than what its values mean.
STRUCTURAL_ROLES = ("auto", "category", "text", "id")
# Faker draws per generated chunk: values are sampled from this pool (Faker is ~0.3 ms a call).
POOL_SIZE = 2048
DEFAULT_LOCALE = "en_US"

Generate = Callable[[int, np.random.Generator, str], list[str]]


@dataclass(frozen=True)
class Role:
    """A semantic role: `generate(n, rng, locale)` gives `n` values that mean the same thing.

    `head`: whether the column's common values are worth learning (DP thresholded counts) and
    modelling jointly with the other columns; generated values then fill only the tail.
    """

    name: str
    description: str
    generate: Generate
    head: bool = True


_REGISTRY: dict[str, Role] = {}


def register(role: Role) -> Role:
    """Add a role to the registry (the config accepts every registered name)."""
    if role.name in _REGISTRY or role.name in STRUCTURAL_ROLES:
        raise ValueError(f"role '{role.name}' is already registered")
    _REGISTRY[role.name] = role
    return role


def role_named(name: str) -> Role | None:
    """The semantic role of that name; None for the structural ones (auto, category, text, id)."""
    return _REGISTRY.get(name)


def role_names() -> tuple[str, ...]:
    """Every role the config accepts: the structural ones, then the registered ones."""
    return (*STRUCTURAL_ROLES, *_REGISTRY, FORMAT_ROLE)


@cache
def _faker(locale: str):
    from faker import Faker

    return Faker(locale)


def _from_faker(method: str) -> Generate:
    """Draws from a seeded pool of Faker values: the same seed gives the same values."""

    def generate(n: int, rng: np.random.Generator, locale: str) -> list[str]:
        faker = _faker(locale)
        faker.seed_instance(int(rng.integers(2**31)))
        provider = getattr(faker, method)
        pool = np.array([provider() for _ in range(min(n, POOL_SIZE))], dtype=object)
        return pool[rng.integers(len(pool), size=n)].tolist() if n else []

    return generate


def _uuids(n: int, rng: np.random.Generator, locale: str) -> list[str]:
    import uuid

    return [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(n)]


def _ipv4(n: int, rng: np.random.Generator, locale: str) -> list[str]:
    # Public unicast-looking addresses: first octet 1..223, never 0, 10, 127 or multicast.
    octets = rng.integers(0, 256, size=(n, 4))
    first = rng.choice([o for o in range(1, 224) if o not in (10, 127)], size=n)
    octets[:, 0] = first
    return [".".join(map(str, row)) for row in octets.tolist()]


for _name, _description, _method in (
    ("first_name", "a person's first name", "first_name"),
    ("last_name", "a person's last name", "last_name"),
    ("full_name", "a person's full name", "name"),
    ("email", "an e-mail address", "email"),
    ("phone", "a phone number", "phone_number"),
    ("street_address", "a street address", "street_address"),
    ("city", "a city", "city"),
    ("postal_code", "a postal code", "postcode"),
    ("company", "a company name", "company"),
    ("url", "a URL", "url"),
):
    register(Role(_name, _description, _from_faker(_method)))
register(Role("ip_address", "an IPv4 address", _ipv4))
register(Role("uuid", "a random UUID (version 4)", _uuids, head=False))

# --- format patterns ---------------------------------------------------------------------------

FORMAT_ROLE = "format"
_CLASSES = {
    "9": "0123456789",
    "A": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "a": "abcdefghijklmnopqrstuvwxyz",
    "X": "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "x": "abcdefghijklmnopqrstuvwxyz0123456789",
}
# Tried in order for the reserved character of an id: the first one its position cannot hold.
_RESERVED_CHOICES = ("Z", "z", "0", "~")


@dataclass(frozen=True)
class FormatPattern:
    """A declared format: `9` a digit, `A` an upper-case letter, `a` lower case, `X` upper case
    or digit, `x` lower case or digit, `\\c` the literal c; any other character stands for
    itself. E.g. `AA-9999` or `S999999`."""

    text: str
    positions: tuple[str, ...]  # one alphabet per character; a literal is a 1-char alphabet

    @classmethod
    def parse(cls, text: str) -> FormatPattern:
        positions: list[str] = []
        escaped = False
        for char in text:
            if escaped:
                positions.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            else:
                positions.append(_CLASSES.get(char, char))
        if escaped or not any(len(p) > 1 for p in positions):
            raise ValueError(
                f"format '{text}' has no character class (9, A, a, X or x) to draw from"
            )
        return cls(text, tuple(positions))

    def reserved(self) -> FormatPattern:
        """The same layout with the first class position holding a character it cannot hold.

        No value that follows this pattern can equal a value of the reserved one: twin ids in
        this form never equal a real id of the declared format, whatever the real values are.
        """
        index = next(i for i, p in enumerate(self.positions) if len(p) > 1)
        char = next(c for c in _RESERVED_CHOICES if c not in self.positions[index])
        positions = (*self.positions[:index], char, *self.positions[index + 1 :])
        return FormatPattern(f"{self.text} (reserved {char!r} at {index + 1})", positions)

    def generate(self, n: int, rng: np.random.Generator) -> list[str]:
        columns = [
            np.array(list(p), dtype=object)[rng.integers(len(p), size=n)] for p in self.positions
        ]
        return ["".join(row) for row in zip(*columns, strict=True)] if n else []

    def matches(self, value: str) -> bool:
        return len(value) == len(self.positions) and all(
            c in p for c, p in zip(value, self.positions, strict=True)
        )


# --- reserved forms of generated keys ----------------------------------------------------------

# Without a declared format, string keys drawn from DP formats start with this character: a real
# key starting with it could be met, so declaring `format` makes the guarantee unconditional.
RESERVED_PREFIX = "~"


def reserve_strings(values: list[str]) -> list[str]:
    """String keys in a form no real key shares (first character replaced by `RESERVED_PREFIX`)."""
    return [RESERVED_PREFIX + v[1:] if v else RESERVED_PREFIX for v in values]


def unique_draws(
    draw: Callable[[int], list[str]], n: int, issued: set[str], *, tries: int = 20
) -> list[str]:
    """`n` values from `draw`, none in `issued` nor repeated (all added to `issued`).

    Clashes are redrawn a bounded number of times, then made unique by a numeric suffix.
    """
    out: list[str | None] = [None] * n
    todo = list(range(n))
    for _ in range(tries):
        if not todo:
            break
        fresh = draw(len(todo))
        left = []
        for i, value in zip(todo, fresh, strict=True):
            if value in issued:
                left.append(i)
            else:
                issued.add(value)
                out[i] = value
        todo = left
    for i in todo:
        value, suffix = draw(1)[0], 1
        while f"{value}{suffix}" in issued:
            suffix += 1
        issued.add(f"{value}{suffix}")
        out[i] = f"{value}{suffix}"
    return [v for v in out if v is not None]


# --- proposals for `dbt-synth init` ------------------------------------------------------------

_KEY_NAME = re.compile(r"(^|_)(id|uid|uuid|guid|key|number)$", re.IGNORECASE)
_NAME_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (role, re.compile(pattern, re.IGNORECASE))
    for role, pattern in (
        ("email", r"(^|_)e?_?mail(_address)?$"),
        ("phone", r"(^|_)(phone|tel|telephone|mobile|fax)(_number|_no)?$"),
        ("first_name", r"(^|_)(first|given|fore|nick|pet|animal)_?name$"),
        ("last_name", r"(^|_)(last|family|sur)_?name$"),
        ("full_name", r"^(full_?name|person_?name|customer_?name|contact_?name)$"),
        # Before street_address, whose `*_address` would claim `ip_address`.
        ("ip_address", r"(^|_)(ip|ip_address|ipv4|ip_addr)$"),
        ("street_address", r"(^|_)(street|address|addr|address_line_?1|street_address)$"),
        ("city", r"(^|_)(city|town)$"),
        ("postal_code", r"(^|_)(zip|zipcode|zip_code|postcode|postal_code|post_code)$"),
        ("company", r"(^|_)(company|employer|organisation|organization)(_name)?$"),
        ("url", r"(^|_)(url|website|homepage|web_?site)$"),
        ("uuid", r"(^|_)(uuid|guid)$"),
    )
)
_STRING_TYPE = re.compile(r"(N?VAR)?CHAR(ACTER)?( VARYING)?|N?TEXT|STRING|BPCHAR")
_INTEGER_TYPE = re.compile(r"U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?\d*|LONG|SHORT|BYTE|(BIG)?SERIAL")


def _snake(name: str) -> str:
    """A column name as the patterns above read it: `Company Name`, `companyName` and
    `IPAddress` as `company_name`, `company_name` and `ip_address`."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name.strip())
    return re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").lower()


def _base_type(sql_type: str) -> str:
    return sql_type.upper().split("(")[0].strip()


def looks_like_key(name: str, sql_type: str, tests: Iterable[str] = ()) -> bool:
    """Whether a column is an identifier by its name (`*_id`, `uid`, `*_key`, `*_number`) or a
    `unique` test, for an integer or string type (a float or date is never a key)."""
    base = _base_type(sql_type)
    keyish = bool(_INTEGER_TYPE.fullmatch(base) or _STRING_TYPE.fullmatch(base))
    return keyish and ("unique" in tests or bool(_KEY_NAME.search(_snake(name))))


def propose_role(name: str, sql_type: str, tests: Iterable[str] = ()) -> str | None:
    """The role `dbt-synth init` writes for a column, from its name, type and tests only.

    A key by name or `unique` test gets `id`; a string column whose name says what it holds gets
    that semantic role; anything else gets no proposal (the `auto` default).
    """
    tests = tuple(tests)
    base = _base_type(sql_type)
    name = _snake(name)
    if base == "UUID":
        return None  # UUID columns are fresh keys already
    if _STRING_TYPE.fullmatch(base):
        for role, pattern in _NAME_RULES:
            if pattern.search(name) and (role != "postal_code" or not _KEY_NAME.search(name)):
                return role
    if looks_like_key(name, sql_type, tests):
        return "id"
    return None
