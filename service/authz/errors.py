"""Error codes of role assignments."""

from __future__ import annotations

from service.errors import ErrorCode

ROLE_NOT_ASSIGNABLE = ErrorCode("ROLE_NOT_ASSIGNABLE", "该角色不能分配给账号")
CANNOT_ASSIGN_SELF = ErrorCode("CANNOT_ASSIGN_SELF", "不能给自己分配角色")
CANNOT_REVOKE_SELF = ErrorCode("CANNOT_REVOKE_SELF", "不能撤销自己的角色")
ROLE_NOT_ALLOWED_AT_UNIT = ErrorCode("ROLE_NOT_ALLOWED_AT_UNIT", "{role}不能在{kind}任职")
ADMIN_ROLES_EXCLUSIVE = ErrorCode(
    "ADMIN_ROLES_EXCLUSIVE",
    "系统管理员、安全管理员、审计管理员三员分立：一个账号只能担任其中一个角色，"
    "且不能同时担任业务角色",
)
ROLE_ALREADY_ASSIGNED = ErrorCode("ROLE_ALREADY_ASSIGNED", "该账号已在该组织担任此角色")
# A visible role the principal's grants do not rank above (FORBIDDEN, with the reason).
NO_AUTHORITY_OVER_ROLE = ErrorCode(
    "FORBIDDEN",
    "无权任免该组织的{role}：只能任免下级组织的角色，或本组织中级别低于自己的角色",
    403,
)
