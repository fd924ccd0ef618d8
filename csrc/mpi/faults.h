// Naming the rank that holds a job up. When a collective has waited past the job's timeout, the
// waiting rank sends its status to every other rank on a communicator of its own (a duplicate of
// MPI_COMM_WORLD that only this file uses) and collects their answers for a grace period. Every
// rank's communication thread answers such questions whenever it polls (during its own
// collectives and every 20 ms when idle), so a rank whose training loop is stuck in computation
// still answers, telling which collective it last joined; a rank that is dead, stopped or
// unreachable does not answer. The waiting rank then prints, per rank that did not join the
// collective, what it heard (or that it heard nothing) and aborts the job: MPI_Abort ends every
// rank, and the launcher reports it. If the collective completes during the grace period the
// wait was only slow, and training goes on.
// Everything here runs on the communication thread.
#pragma once
#include <mpi.h>
#include <cstdint>
#include <string>
#include "comm_thread.h"

namespace ff::mpi::faults {

void setup(MPI_Comm fault_comm, const WorldInfo& world);
void teardown();
// Answers the status questions that other ranks have sent (never blocks).
void serve();
// This rank's progress: the collective it entered last (numbered from 1), and the last it finished.
void progress(uint64_t entered, uint64_t done, const std::string& what);
void set_marker(const std::string& marker);
// A collective (`pending`, or one run elsewhere when pending is null) has failed or waited
// `waited` seconds. Returns true when `pending` completed during the grace period; otherwise
// prints the report and aborts the job.
bool report(MPI_Request* pending, const std::string& what, const std::string& why, double waited);

}  // namespace ff::mpi::faults
