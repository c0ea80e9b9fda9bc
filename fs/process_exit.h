// How the process behind a FUSE request is ending, read from /proc: a
// flush that comes while a process exits tells whether it was killed by a
// signal (an interrupted writer, whose data must not be published) or
// ended on its own.
//
// While a task exits, the kernel sets PF_EXITING and its exit code before
// it closes the task's files, and the close waits for our flush reply: so
// /proc/<tid>/stat still shows both when the flush is handled.
//
// Pure functions and one read of /proc; thread-safe.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace imagefs {

struct ProcessDeath {
  std::string command;  // comm, as ps shows it
  int signal = 0;       // the signal that killed it
};

// From the text of /proc/<tid>/stat: the death by a signal it shows, or
// nullopt (alive, ended by exit(), or text that cannot be read).
std::optional<ProcessDeath> ParseKilledBySignal(std::string_view stat);

// The same for a running task; nullopt also when it cannot be read.
std::optional<ProcessDeath> KilledBySignal(pid_t tid);

// The process (thread group) a task belongs to; nullopt when it is gone.
std::optional<pid_t> ThreadGroupOf(pid_t tid);

// "SIGKILL", "SIGINT"...; "signal N" for the others.
std::string SignalName(int signal);

}  // namespace imagefs
