"""Pingyi (评议): democratic evaluation of party members, as a multi-tenant GraphQL service."""
