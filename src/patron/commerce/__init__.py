"""Commerce: products, orders, refunds, subscriptions."""
