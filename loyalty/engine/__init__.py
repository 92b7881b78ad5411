"""The points engine, the bottom layer: ledger, pricing, tiers, coupons, earn multipliers, expiry,
the outbox and the database module. It imports only models, Django and the standard library;
every public action is one durable transaction. docs/architecture.md lists the layers."""
