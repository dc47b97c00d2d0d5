# mk/mpi.mk — MPI data-parallel training (issue 6). Included at the end of the
# Makefile. Finds mpicc (OpenMPI: `apt-get install libopenmpi-dev openmpi-bin`),
# compiles src/util/dist.c with its flags and -DROPEGPT_HAVE_MPI=1, and links
# the tools, benches and test runner with the MPI library. NO_MPI=1, or no
# working mpicc, builds the same code with dist.c's single-process stand-in.
# Only dist.o gets the define (target-specific variable), so nothing else in
# the tree can grow an #ifdef on MPI. The link rules read $(APP_LIBS) in their
# recipes, which make expands when it runs them, so appending here (after the
# rules were read) still reaches them.

MPICC ?= mpicc
ifneq ($(NO_MPI),1)
MPI_CFLAGS := $(shell $(MPICC) --showme:compile 2>/dev/null)
MPI_LIBS   := $(shell $(MPICC) --showme:link 2>/dev/null)
ifneq ($(strip $(MPI_LIBS)),)
HAVE_MPI := $(call probe,$(MPI_CFLAGS) $(MPI_LIBS),\043include <mpi.h>\nint main(void){int f=0;MPI_Initialized(&f);return f;}\n)
endif
endif

ifeq ($(HAVE_MPI),yes)
$(BUILD)/obj/src/util/dist.o: APP_CFLAGS += $(MPI_CFLAGS) -DROPEGPT_HAVE_MPI=1
APP_LIBS += $(MPI_LIBS)
MPI_STATE := on $(MPI_CFLAGS) $(MPI_LIBS)
else
MPI_STATE := off
endif

# dist.o is rebuilt when MPI is switched on or off in the same BUILD folder:
# it depends on a state file rewritten only when its content changes.
MPI_STATE_FILE := $(BUILD)/mpi.state
_mpi_state := $(shell mkdir -p $(BUILD) && (echo '$(MPI_STATE)' | cmp -s - $(MPI_STATE_FILE) || echo '$(MPI_STATE)' > $(MPI_STATE_FILE)))
$(BUILD)/obj/src/util/dist.o: $(MPI_STATE_FILE)

.PHONY: mpi-config
config: mpi-config
mpi-config:
	@echo "mpi: $(if $(filter yes,$(HAVE_MPI)),yes ($(MPICC)),no$(if $(filter 1,$(NO_MPI)), (NO_MPI=1)))"
