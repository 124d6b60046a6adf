"""The retail price of a roaming session (apps/tariffs/retail.py)."""

from decimal import Decimal

import pytest

from apps.tariffs.retail import RetailTerms, retail_price

D = Decimal


def test_pass_through_keeps_the_cpo_price_and_adds_our_vat() -> None:
    price = retail_price(RetailTerms(vat_rate=D("19")), cpo_excl_vat=D("10.00"), kwh=D("20"), currency="EUR")
    assert (price.excl_vat, price.vat, price.incl_vat) == (D("10.00"), D("1.90"), D("11.90"))


def test_markup_is_a_percentage_of_the_cpo_price_rounded_once_half_up() -> None:
    terms = RetailTerms(mode="markup", markup_percent=D("15"), vat_rate=D("19"))
    price = retail_price(terms, cpo_excl_vat=D("7.13"), kwh=D("20"), currency="EUR")
    # 7.13 * 1.15 = 8.1995 -> 8.20; VAT 1.558 -> 1.56
    assert (price.excl_vat, price.vat, price.incl_vat) == (D("8.20"), D("1.56"), D("9.76"))


def test_fixed_price_per_kwh_ignores_the_cpo_price() -> None:
    terms = RetailTerms(mode="fixed_kwh", price_per_kwh_excl_vat=D("0.4500"), vat_rate=D("20"))
    price = retail_price(terms, cpo_excl_vat=D("99"), kwh=D("12.345"), currency="EUR")
    # 0.45 * 12.345 = 5.55525 -> 5.56; VAT 1.112 -> 1.11
    assert (price.excl_vat, price.vat, price.incl_vat) == (D("5.56"), D("1.11"), D("6.67"))


def test_a_fixed_rule_without_its_price_is_refused() -> None:
    with pytest.raises(ValueError, match="needs the price"):
        retail_price(RetailTerms(mode="fixed_kwh"), cpo_excl_vat=D(1), kwh=D(1), currency="EUR")


def test_zero_decimal_currencies_round_to_whole_units() -> None:
    terms = RetailTerms(mode="markup", markup_percent=D("10"))
    assert retail_price(terms, cpo_excl_vat=D("1005"), kwh=D(1), currency="JPY").excl_vat == D("1106")
