"""The coordinator's page handlers and the sign-in card's, for the pages' router."""

from __future__ import annotations

from timebank.pages.staff import cards, credit, home, members, requests

STAFF_ROUTES = [
    home.staff_home,
    members.members_page, members.register_page, members.register, members.member_page, members.edit_member,
    members.set_member_pin, members.add_relative, members.ask_for_member, members.member_passbook,
    members.member_history,
    credit.credit_page, credit.credit_check, credit.credit_confirm, credit.reverse_page, credit.reverse,
    requests.requests_page, requests.request_page, requests.request_step,
    cards.print_card, cards.card_login_page, cards.card_login,
]  # fmt: skip
