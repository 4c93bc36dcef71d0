"""GraphQL: the root schema (`root`), what domains share (`relay`, `context`, `ids`),
document limits (`limits`) and the HTTP view (`view`).

Kept free of imports so that a domain's GraphQL module can import `service.schema.relay`
without loading every other domain first.
"""
