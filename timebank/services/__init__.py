"""Services: service types and service requests, how hours are earned and spent."""
