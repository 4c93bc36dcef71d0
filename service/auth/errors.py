"""Error codes of login, sessions and accounts."""

from __future__ import annotations

from service.errors import ErrorCode

INVALID_CREDENTIALS = ErrorCode("INVALID_CREDENTIALS", "用户名或密码错误", 401)
ACCOUNT_LOCKED = ErrorCode(
    "ACCOUNT_LOCKED", "连续登录失败次数过多，账号已锁定，请 {minutes} 分钟后再试", 423
)
ACCOUNT_DISABLED = ErrorCode("ACCOUNT_DISABLED", "账号已停用", 403)
SESSION_ENDED = ErrorCode("UNAUTHENTICATED", "登录已失效，请重新登录", 401)
INVALID_TOKEN = ErrorCode("UNAUTHENTICATED", "登录已失效或令牌无效，请重新登录", 401)
INVALID_REFRESH_TOKEN = ErrorCode("INVALID_REFRESH_TOKEN", "刷新令牌无效或已过期，请重新登录", 401)
INVALID_USERNAME = ErrorCode(
    "INVALID_USERNAME", "用户名须为 3–64 位小写字母、数字、下划线、点或连字符"
)
INVALID_DISPLAY_NAME = ErrorCode("INVALID_DISPLAY_NAME", "姓名不能为空，且不超过 64 个字")
WEAK_PASSWORD = ErrorCode("WEAK_PASSWORD", "密码不符合要求：{problems}")
USERNAME_TAKEN = ErrorCode("USERNAME_TAKEN", "用户名“{username}”已被使用")
