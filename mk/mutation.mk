# Mutation testing (docs/TESTING.md): gremlins makes small mistakes in the pure-Go packages, one
# at a time, and runs the package's own tests against each; a mistake no test notices "lived".
# Not in `make test`: it takes hours on a 2-core machine.
#   make mutation                                   every package below, one after another
#   make mutation MUTATION_PACKAGES=agent/config    one package (or a few, space-separated)
#   make mutation MUTATION_COEFFICIENT=20           a longer timeout for each mutant's tests
# The table for docs/TESTING.md is written to .cache/mutation/run-DATE/table.md.
MUTATION_PACKAGES    ?= board agent agent/config agent/fleet agent/fleet/broker agent/fleet/wire \
                        agent/health agent/metrics agent/sdnotify pipelines cmd/capboxctl
MUTATION_COEFFICIENT ?= 10
MUTATION_OUT         ?= $(CACHE)/mutation/run-$(shell date -u +%Y%m%d-%H%M%S)

mutation: deps ## gremlins over board, agent/..., pipelines (planner) and capboxctl: the table in docs/TESTING.md (hours)
	scripts/mutation.sh $(MUTATION_OUT) $(MUTATION_COEFFICIENT) $(MUTATION_PACKAGES)

.PHONY: mutation
