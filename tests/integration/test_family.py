"""Family groups over HTTP: invitations by email, accept, leave, remove, and consolidated totals that equal
the sum of the members' own summaries, shown only to members and never with anyone's trades."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import unique_email
from tests.integration.test_uploads_analytics import INFY, RELIANCE, TCS, upload
from tests.support.brokerfiles import cams_pdf, tradebook_xlsx

CAMS = cams_pdf([{"folio": "555 / 1", "amc": "Axis Mutual Fund", "schemes": [{
    "isin": "INF846K01DP8", "name": "Axis Bluechip Fund - Direct Growth",
    "txns": [["05-Apr-2024", "Purchase", "10,000.00", "200.000", "50.0000", "200.000"]],
    "valuation": ("200.000", "31-Mar-2025", "55.0000", "10,000.00", "31-Mar-2025", "11,000.00")}]}])


def test_family_of_three_consolidates_accepted_members_only(api_factory: Any, database_url: str) -> None:
    owner, second, third, outsider, invited = (api_factory(database_url) for _ in range(5))
    emails = [unique_email(t) for t in ("owner", "second", "third", "outsider", "invited")]
    for c, e in zip((owner, second, third, outsider, invited), emails, strict=True):
        c.login(e)
    upload(owner, [("o.xlsx", tradebook_xlsx(INFY))])
    upload(second, [("s.xlsx", tradebook_xlsx(TCS + RELIANCE))])
    upload(third, [("t.xlsx", tradebook_xlsx(INFY[:2]))])
    upload(third, [("cas.pdf", CAMS)], path="cas", field="file")
    upload(invited, [("i.xlsx", tradebook_xlsx(TCS))])

    r = owner.post("/api/family/groups", json={"name": "Sharma family"})
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    for e in emails[1:3] + emails[4:]:
        r = owner.post(f"/api/family/groups/{gid}/invite", json={"email": e})
        assert r.status_code == 201, r.text
    # the second member follows the emailed link; the third accepts from their own account
    token = second.inbox.last_token(emails[1])
    assert second.post(f"/api/family/groups/{gid}/accept", params={"token": token}).status_code == 200
    mine = third.get("/api/family/invitations").json()
    assert [(i["group_id"], i["group_name"]) for i in mine] == [(gid, "Sharma family")]
    assert third.post(f"/api/family/groups/{gid}/accept").status_code == 200
    # a used link does not work twice; someone without an invitation cannot join
    assert outsider.post(f"/api/family/groups/{gid}/accept", params={"token": token}).status_code in (400, 403)
    # never invited: the same 404 as a group that does not exist (its existence does not leak)
    assert outsider.post(f"/api/family/groups/{gid}/accept").status_code == 404
    assert outsider.post("/api/family/groups/999999/accept").status_code == 404
    # only the owner invites
    assert second.post(f"/api/family/groups/{gid}/invite", json={"email": emails[3]}).status_code == 403

    cons = owner.get("/api/family/consolidated").json()
    assert [m["email"] for m in cons["members"]] == emails[:3]  # the invited-but-not-accepted is not counted
    own = [c.get("/api/analytics/summary").json() for c in (owner, second, third)]
    for key in ("invested", "current_value", "realized_pnl", "unrealized_pnl"):
        assert cons["total"][key] == round(sum(s[key] for s in own), 2), key
        assert [m[key] for m in cons["members"]] == [s[key] for s in own]
    assert cons["total"]["mutual_funds"]["current_value"] == 11000.0
    top = {h["symbol"]: h for h in cons["top_holdings"]}
    assert top["INFY"]["quantity"] == 1 + 15 and top["INFY"]["members"] == 2  # combined across members
    assert top["TCS"]["quantity"] == 2
    # totals and summaries only: no trade, trade id or lot of anyone
    text = json.dumps(cons)
    assert "trade_id" not in text and "lots" not in text and "1001" not in text
    assert second.get("/api/family/consolidated").json()["total"] == cons["total"]

    # non-members: the group does not exist for them
    assert outsider.get("/api/family/consolidated", params={"group_id": gid}).status_code == 404
    assert outsider.get("/api/family/consolidated").status_code == 404
    assert invited.get("/api/family/consolidated", params={"group_id": gid}).status_code == 404

    # leave and remove: they stop counting and stop seeing
    assert second.post(f"/api/family/groups/{gid}/leave").status_code == 204
    assert owner.delete(f"/api/family/groups/{gid}/members/{third.get('/api/auth/me').json()['id']}"
                        ).status_code == 204
    assert third.get("/api/family/consolidated", params={"group_id": gid}).status_code == 404
    after = owner.get("/api/family/consolidated").json()
    assert [m["email"] for m in after["members"]] == emails[:1]
    assert after["total"]["invested"] == own[0]["invested"]
    assert owner.post(f"/api/family/groups/{gid}/leave").status_code == 400  # the owner stays
    groups = owner.get("/api/family/groups").json()
    assert [g["name"] for g in groups] == ["Sharma family"] and len(groups[0]["members"]) == 1


def test_inviting_a_member_again_is_a_409_that_does_not_repeat_the_address(api: Any) -> None:
    email = unique_email("owner")
    api.login(email)
    gid = api.post("/api/family/groups", json={"name": "Mehta family"}).json()["id"]
    r = api.post(f"/api/family/groups/{gid}/invite", json={"email": email})  # the owner is a member
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == "That address is already a member of this group"
    assert email.split("@")[0] not in r.text and "example.com" not in r.text
