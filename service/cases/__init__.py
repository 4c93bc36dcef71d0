"""处置不合格党员 (disposal cases): one member's case from its origin (an unqualified
grade, a 三不 flag, an application to withdraw ...) through investigation, talk,
education, re-evaluation, proposal, pre-review, the assembly's vote and the approval
chain, to correction, persuasion, removal or withdrawal. Never deleted.

The surface other packages use::

    from service.cases import rules                      # enums, labels, the machine
    from service.cases.service import case_for_archive, may_read_case, open_case, ...
"""

from service.cases import rules
from service.cases.rules import CaseOrigin, CaseOutcome, CaseStage, Disposal, RecordKind

__all__ = ["CaseOrigin", "CaseOutcome", "CaseStage", "Disposal", "RecordKind", "rules"]
