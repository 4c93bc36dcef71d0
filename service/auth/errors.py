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
# Second factor, forced password changes, idle sessions, the token endpoint's rate limit
MFA_REQUIRED = ErrorCode("MFA_REQUIRED", "请输入动态验证码（或一次性恢复码）", 401)
INVALID_OTP = ErrorCode("INVALID_OTP", "动态验证码或恢复码错误", 401)
MFA_ENROLLMENT_REQUIRED = ErrorCode(
    "MFA_ENROLLMENT_REQUIRED", "该账号须先绑定动态验证码（双因素认证）才能登录", 403
)
MFA_ALREADY_ENROLLED = ErrorCode("MFA_ALREADY_ENROLLED", "该账号已绑定动态验证码", 409)
MFA_NOT_STARTED = ErrorCode("MFA_NOT_STARTED", "请先开始绑定动态验证码", 409)
INVALID_ENROLLMENT_TOKEN = ErrorCode(
    "INVALID_ENROLLMENT_TOKEN", "绑定凭证无效或已过期，请重新登录", 401
)
PASSWORD_CHANGE_REQUIRED = ErrorCode(
    "PASSWORD_CHANGE_REQUIRED", "首次登录或密码已重置，须先修改密码（请同时提交新密码）", 403
)
PASSWORD_EXPIRED = ErrorCode(
    "PASSWORD_EXPIRED", "密码已过期，须先修改密码（请同时提交新密码）", 403
)
WRONG_PASSWORD = ErrorCode("WRONG_PASSWORD", "原密码错误")
PASSWORD_REUSED = ErrorCode("PASSWORD_REUSED", "新密码不能与最近 {count} 次使用过的密码相同")
SESSION_IDLE_TIMEOUT = ErrorCode(
    "SESSION_IDLE_TIMEOUT", "长时间未操作，登录已失效，请重新登录", 401
)
TOO_MANY_LOGIN_ATTEMPTS = ErrorCode(
    "TOO_MANY_LOGIN_ATTEMPTS", "登录请求过于频繁，请 {seconds} 秒后再试", 429
)
CANNOT_CHANGE_OWN_ACCOUNT = ErrorCode(
    "CANNOT_CHANGE_OWN_ACCOUNT", "不能停用、启用、重置或解锁自己的账号"
)
ADMIN_ACCOUNT_PROTECTED = ErrorCode(
    "ADMIN_ACCOUNT_PROTECTED",
    "三员分立：管理员账号不能由系统管理员停用、启用、重置密码或解锁，请由平台运维处理",
    403,
)
# WeChat mini-program login and binding (service/auth/wechat.py, service/auth/wechat_login.py)
WECHAT_NOT_CONFIGURED = ErrorCode("WECHAT_NOT_CONFIGURED", "本服务未开通微信小程序登录", 404)
WECHAT_CODE_INVALID = ErrorCode(
    "WECHAT_CODE_INVALID", "微信登录凭证（code）无效或已使用，请重新调用 wx.login 获取", 401
)
WECHAT_RATE_LIMITED = ErrorCode("WECHAT_RATE_LIMITED", "微信登录请求过于频繁，请稍后再试", 429)
WECHAT_RISKY_USER = ErrorCode(
    "WECHAT_RISKY_USER", "微信判定该用户存在安全风险，已拦截登录，请改用用户名和密码登录", 403
)
WECHAT_UNAVAILABLE = ErrorCode("WECHAT_UNAVAILABLE", "微信服务暂时不可用，请稍后再试", 503)
WECHAT_NOT_BOUND = ErrorCode(
    "WECHAT_NOT_BOUND", "该微信尚未绑定账号：请先用用户名和密码登录，再绑定微信", 401
)
WECHAT_ALREADY_BOUND = ErrorCode(
    "WECHAT_ALREADY_BOUND", "该微信已绑定其他账号，请先在该账号解除绑定"
)
WECHAT_NOT_BOUND_TO_ACCOUNT = ErrorCode("WECHAT_NOT_BOUND_TO_ACCOUNT", "本账号未绑定微信")
