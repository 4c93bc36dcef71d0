"""Error codes of the org tree."""

from __future__ import annotations

from service.errors import ErrorCode

ORG_UNIT_ARCHIVED = ErrorCode("ORG_UNIT_ARCHIVED", "该组织已归档，不能再{doing}")
INVALID_PARENT_KIND = ErrorCode("INVALID_PARENT_KIND", "{parent}下不能设立{child}")
INVALID_CODE = ErrorCode("INVALID_CODE", "编码只能由字母、数字、下划线或连字符组成，长度 1–32")
INVALID_NAME = ErrorCode("INVALID_NAME", "名称不能为空，且不超过 100 个字")
DUPLICATE_CODE = ErrorCode("DUPLICATE_CODE", "编码“{code}”已被使用")
CANNOT_ARCHIVE_ROOT = ErrorCode("CANNOT_ARCHIVE_ROOT", "平台根节点不能归档")
ORG_UNIT_HAS_ACTIVE_CHILDREN = ErrorCode(
    "ORG_UNIT_HAS_ACTIVE_CHILDREN", "该组织还有 {count} 个未归档的下级组织"
)
