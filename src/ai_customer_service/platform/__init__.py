"""Platform adapters (sub2api, newapi, ...): upstreams that send messages and want every event back."""
