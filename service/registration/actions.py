"""Casbin actions of the registration drive (党员登记)."""

from __future__ import annotations

from service.authz.actions import Action


class RegistrationAction(Action):
    OPEN = "registration:open"  # open a drive for a tenant or the whole county
    REVIEW = "registration:review"  # the branch reviews submissions
    SUBMIT = "registration:submit"  # a member submits their own application
