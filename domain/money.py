"""Money and prices as text for people, in Indian digit grouping: ₹1,30,13,928.67 and \u2212₹67,372.36.

One place formats every amount a person reads (HTML report, emails, CLI tables, signal reasons, risk
messages); JSON keeps plain numbers. Indian grouping puts the last three digits of the whole part
together and every two before them (lakh, crore). Rounding is half-up on the decimal value (a float is
read through its shortest repr, so 2.675 is two six seven five, not 2.67499…), and the minus sign is
U+2212, the typographic minus.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MINUS = "\u2212"  # the typographic minus sign
MISSING = "\u2013"  # an en dash stands for no value


def group_indian(digits: str) -> str:
    """'13013928' -> '1,30,13,928' (digits only, no sign)."""
    if len(digits) <= 3:
        return digits
    head, tail = digits[:-3], digits[-3:]
    pairs: list[str] = []
    while len(head) > 2:
        pairs.insert(0, head[-2:])
        head = head[:-2]
    return ",".join([head, *pairs, tail])


def format_number(value: float | int | Decimal | None, decimals: int = 2, sign: bool = False) -> str:
    """A number with Indian grouping, `decimals` places (half-up), U+2212 for negatives; `sign` adds '+'
    to positives. None or a non-finite value reads MISSING."""
    if value is None:
        return MISSING
    try:
        d = Decimal(str(value)) if not isinstance(value, Decimal) else value
        if not d.is_finite():
            return MISSING
        q = d.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return MISSING
    negative = q < 0 and q != 0
    whole, _, frac = f"{abs(q):f}".partition(".")
    text = group_indian(whole) + (f".{frac}" if decimals > 0 else "")
    if negative:
        return MINUS + text
    return ("+" + text) if sign and q > 0 else text


def format_inr(value: float | int | Decimal | None, decimals: int = 2, sign: bool = False) -> str:
    """₹ amount: format_inr(13013928.67) == '₹1,30,13,928.67'; format_inr(-67372.36) == MINUS + '₹67,372.36'."""
    text = format_number(value, decimals, sign)
    if text == MISSING:
        return text
    if text[0] in (MINUS, "+"):
        return text[0] + "₹" + text[1:]
    return "₹" + text


def format_price(value: float | int | Decimal | None) -> str:
    """A share price or a price-like indicator value: two decimals, Indian grouping, no symbol
    (14,720.50 rather than 1.472e+04)."""
    return format_number(value, 2)
