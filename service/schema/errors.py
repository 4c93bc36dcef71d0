"""Error codes of the GraphQL layer itself: documents refused before anything runs,
and persisted queries (service/schema/persisted.py).

The document codes are raised as `GraphQLError` extensions by the validation rules
(service/schema/limits.py) and by `root.format_error`; they are declared here too, so
the client guide's generated table (docs/clients.md) lists every code a client can
meet. Their HTTP status is what `application/graphql-response+json` answers with
(a request error: nothing ran); `application/json` answers such errors with 200
(the GraphQL-over-HTTP specification's legacy rule).
"""

from __future__ import annotations

from service.errors import ErrorCode

# Documents that cannot run
GRAPHQL_PARSE_FAILED = ErrorCode("GRAPHQL_PARSE_FAILED", "查询无效：{reason}")
GRAPHQL_VALIDATION_FAILED = ErrorCode("GRAPHQL_VALIDATION_FAILED", "查询无效：{reason}")
QUERY_TOO_LARGE = ErrorCode("QUERY_TOO_LARGE", "查询过长，超过词法单元上限")
QUERY_TOO_DEEP = ErrorCode("QUERY_TOO_DEEP", "查询嵌套层数 {depth} 超过上限 {maximum}")
TOO_MANY_ALIASES = ErrorCode("TOO_MANY_ALIASES", "别名数量 {count} 超过上限 {maximum}")
INTROSPECTION_DISABLED = ErrorCode("INTROSPECTION_DISABLED", "已关闭 GraphQL 内省查询")
# Anything unexpected, masked (its text stays in the server's log)
INTERNAL_SERVER_ERROR = ErrorCode("INTERNAL_SERVER_ERROR", "服务器内部错误", 500)

# Persisted queries: the Apollo protocol's codes where it has one
PERSISTED_QUERY_NOT_FOUND = ErrorCode(
    "PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound：请连同完整查询文本重新发送", 404
)
PERSISTED_QUERY_NOT_SUPPORTED = ErrorCode(
    "PERSISTED_QUERY_NOT_SUPPORTED", "PersistedQueryNotSupported：本服务未启用自动持久化查询"
)
PERSISTED_QUERY_HASH_MISMATCH = ErrorCode(
    "PERSISTED_QUERY_HASH_MISMATCH", "持久化查询的 sha256Hash 与查询文本不符"
)
PERSISTED_QUERY_INVALID = ErrorCode(
    "PERSISTED_QUERY_INVALID",
    "persistedQuery 扩展无效：须为 version 1 与 64 位十六进制的 sha256Hash",
)
# Trusted-documents mode: the document (by hash or by text) is not in the manifest
PERSISTED_QUERY_NOT_IN_LIST = ErrorCode(
    "PERSISTED_QUERY_NOT_IN_LIST", "该查询不在本服务允许的操作清单中", 403
)
