"""Accounts, passwords, tokens and login."""
