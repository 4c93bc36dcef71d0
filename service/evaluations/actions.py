"""Casbin actions of democratic evaluation (民主评议党员)."""

from __future__ import annotations

from service.authz.actions import Action


class EvaluationAction(Action):
    READ = "evaluation:read"  # rounds, rosters, tallies (after close), proposals, overview
    SET_POLICY = "evaluation:set_policy"  # the grading policy of the county or a tenant
    OPEN = "evaluation:open"  # open rounds (a branch's own, or every branch below a unit)
    RUN = "evaluation:run"  # the branch secretary moves a round through its stages
    ASSIST = "evaluation:assist"  # branch committee: excused members, attendance, tokens
    SEND_BACK = "evaluation:send_back"  # a superior sends a round back a stage
    PARTICIPATE = "evaluation:participate"  # a member: self-evaluation, ballot, assembly vote
    EXPORT = "evaluation:export"  # the result table (民主评议结果汇总表)
