"""deals: opens a deal when an AE is assigned, moves it through stages, forecasts quotas."""
