"""Casbin actions of disposal cases (处置不合格党员)."""

from __future__ import annotations

from service.authz.actions import Action


class CaseAction(Action):
    READ = "case:read"  # the cases of the branches below (secretaries, committees, county)
    RUN = "case:run"  # the branch secretary opens a case and records each step
    PRE_REVIEW = "case:pre_review"  # the tenant's committee pre-reviews a proposal
    COUNTY_REVIEW = "case:county_review"  # the county organization department, in writing
    # A member's part: the member files statements and appeals on their own case, an
    # educator logs sessions on the case they are assigned to (both checked per case).
    PARTICIPATE = "case:participate"
    # The case bundle (立卷归档): its first export of a closed case writes the archive
    # record and the decision into the member's file. Those who run or oversee cases.
    ARCHIVE = "case:archive"
