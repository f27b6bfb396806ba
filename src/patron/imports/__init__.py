"""Imports of customers, orders, products and subscriptions from files."""
