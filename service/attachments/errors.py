"""Error codes of attachments."""

from __future__ import annotations

from service.errors import ErrorCode

ATTACHMENT = "附件"

ATTACHMENT_EMPTY = ErrorCode("ATTACHMENT_EMPTY", "上传的文件为空")
ATTACHMENT_TOO_LARGE = ErrorCode("ATTACHMENT_TOO_LARGE", "附件超过 {limit} 字节上限", 413)
ATTACHMENT_TYPE_NOT_ALLOWED = ErrorCode(
    "ATTACHMENT_TYPE_NOT_ALLOWED", "附件类型不受支持（仅限 {allowed}），或文件内容与类型不符"
)
ATTACHMENT_FILENAME_INVALID = ErrorCode(
    "ATTACHMENT_FILENAME_INVALID", "文件名不能为空，且不超过 200 个字"
)
ATTACHMENT_ALREADY_LINKED = ErrorCode(
    "ATTACHMENT_ALREADY_LINKED", "附件“{filename}”已附在其他记录上，请重新上传"
)
ATTACHMENT_NOT_YOURS = ErrorCode(
    "ATTACHMENT_NOT_YOURS", "只能附上本人上传的附件（“{filename}”）", 403
)
ATTACHMENT_OWNER_KIND_UNKNOWN = ErrorCode("ATTACHMENT_OWNER_KIND_UNKNOWN", "附件不能附在“{kind}”上")
