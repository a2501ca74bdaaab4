"""The facilitator dashboard: an HTTP server (SSE) beside the gRPC one, and the
post-session report. Both read the same LiveEngine snapshots as `Subscribe`."""
