"""Casbin actions of the member ledger."""

from __future__ import annotations

from service.authz.actions import Action


class MemberAction(Action):
    READ = "member:read"  # the ledger, masked
    READ_PII = "member:read_pii"  # full ID and phone numbers, with a reason, audited
    CREATE = "member:create"
    UPDATE = "member:update"  # edit, status, category, branch within the tenant
    TRANSFER = "member:transfer"  # 组织关系转接 to another tenant (both ends)
    IMPORT = "member:import"
    EXCUSE = "member:excuse"  # record a valid reason (正当理由) that breaks a 三不 run
    CONTACT = "member:contact"  # log contact with a mobile member (流动党员)
