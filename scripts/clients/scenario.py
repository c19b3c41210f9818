"""What an API consumer does with a Python client generated from the served
OpenAPI document by openapi-python-client (package `crm_client`), against a
running server. Run by scripts/clients.sh after `mypy --strict` has checked it
against the generated code.

    python3 scenario.py BASE_URL CLIENT_ID CLIENT_SECRET
"""

from __future__ import annotations

import sys
import uuid
from typing import Any, TypeVar

from crm_client import AuthenticatedClient, Client
from crm_client.api.customers import (
    get_customer_instance,
    get_customer_list,
    patch_customer_instance,
    post_customer_list,
)
from crm_client.api.oauth import post_token
from crm_client.api.segments import (
    delete_segment_customer,
    post_segment_customer,
    post_segment_list,
)
from crm_client.models import (
    Customer,
    CustomerCreate,
    CustomerPage,
    CustomerWrite,
    Gender,
    GetCustomerListOrdering,
    OAuthError,
    Segment,
    SegmentCreate,
    SegmentMembersItem,
    TokenRequest,
    TokenRequestGrantType,
    TokenResponse,
)


T = TypeVar("T")


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"python client scenario: {message}")


def expect(value: object, kind: type[T], what: str) -> T:
    """`value`, which must be a `kind` (the parsed answer of `what`)."""
    if not isinstance(value, kind):
        raise SystemExit(f"python client scenario: {what}: expected {kind.__name__}, got {value!r}")
    return value


def token(base: str, client_id: str, client_secret: str) -> str:
    """The token endpoint needs no bearer token: a plain `Client` calls it."""
    anonymous = Client(base_url=base, raise_on_unexpected_status=True)
    refused = post_token.sync(
        client=anonymous,
        body=TokenRequest(
            grant_type=TokenRequestGrantType.CLIENT_CREDENTIALS,
            client_id=client_id,
            client_secret="wrong",
        ),
    )
    refused = expect(refused, OAuthError, "a wrong secret is an OAuthError")
    check(refused.error.value == "invalid_client", f"invalid_client: {refused!r}")
    check(bool(refused.error_description), "the OAuth error has a description")
    # A stray bearer header on the token call (some setups add it to every
    # request) does not get in the way of the form credentials.
    stray = anonymous.with_headers({"Authorization": "Bearer stray"})
    issued = post_token.sync(
        client=stray,
        body=TokenRequest(
            grant_type=TokenRequestGrantType.CLIENT_CREDENTIALS,
            client_id=client_id,
            client_secret=client_secret,
            scope="crm:read crm:write",
        ),
    )
    issued = expect(issued, TokenResponse, "a token")
    return issued.access_token


def create(api: AuthenticatedClient, **fields: Any) -> Customer:
    response = post_customer_list.sync_detailed(client=api, body=CustomerCreate(**fields))
    check(response.status_code == 201, f"create: {response.status_code} {response.content!r}")
    return expect(response.parsed, Customer, "create")


def main() -> None:
    base, client_id, client_secret = sys.argv[1:4]
    api = AuthenticatedClient(
        base_url=base, token=token(base, client_id, client_secret), raise_on_unexpected_status=True
    )
    run = uuid.uuid4().hex[:8]

    # Create and get.
    customer = create(
        api,
        full_name=f"Python {run}",
        email=f"py-{run}@example.com",
        gender=Gender.FEMALE,
        accepts_marketing=True,
        tags=["vip"],
    )
    fetched = get_customer_instance.sync(id=customer.id, client=api)
    fetched = expect(fetched, Customer, "get")
    check(fetched.to_dict() == customer.to_dict(), "get returns what create returned")
    check(fetched.level is None, "level is null")

    # PATCH one field: nothing else changes (no default is sent for the
    # fields left out).
    patched = patch_customer_instance.sync(
        id=customer.id, client=api, body=CustomerWrite(note="called back")
    )
    patched = expect(patched, Customer, "patch")
    check(patched.note == "called back", "the note changed")
    check(patched.accepts_marketing is True, "marketing consent kept")
    check(patched.gender == Gender.FEMALE, "gender kept")
    before = {k: v for k, v in customer.to_dict().items() if k not in ("note", "updated_at")}
    after = {k: v for k, v in patched.to_dict().items() if k not in ("note", "updated_at")}
    check(before == after, f"only the note changed: {before} != {after}")

    # An array filter: every id comes back.
    others = [create(api, full_name=f"Python {run} {n}").id for n in range(2)]
    ids = sorted([customer.id, *others])
    page = get_customer_list.sync(
        client=api, id_in=ids, ordering=GetCustomerListOrdering.ID, page_size=100
    )
    page = expect(page, CustomerPage, "list")
    listed = [c.id for c in page.results]
    check(listed == ids, f"id__in={ids} listed {listed}")
    check(page.count == len(ids), f"count {page.count}")

    # A segment: add two customers, remove both with the array form.
    segment = post_segment_list.sync(client=api, body=SegmentCreate(title=f"Python {run}"))
    segment = expect(segment, Segment, "segment")
    two = others
    added = post_segment_customer.sync(
        id=segment.id, client=api, body=[SegmentMembersItem(customer_id=i) for i in two]
    )
    added = expect(added, Segment, "add")
    check(sorted(c.id for c in added.customers) == two, f"both added: {added.customers}")
    removed = delete_segment_customer.sync(id=segment.id, client=api, customer_in=two)
    removed = expect(removed, Segment, "remove")
    check(removed.customers == [], f"both removed: {[c.id for c in removed.customers]}")
    print("python client scenario: ok")


if __name__ == "__main__":
    main()
