"""Planning: the playbook of optimisation approaches and what they are expected to do."""
