// ChildProcess: runs one of the project's executables as a separate process, for tests
// that need a real crash (kill -9) or a real second process. Output goes to a log file.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

extern char** environ;

namespace streamtrain::testing {

// Starts `args[0]` (a path) with `args`, stdout and stderr appended to `log`; the child's
// pid, or -1 when it could not be started. The one place that spawns for the test and
// benchmark process helpers.
inline pid_t SpawnWithLog(const std::vector<std::string>& args, const std::filesystem::path& log) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// Directory of the project's executables (set by CMake for the test binaries).
inline std::filesystem::path BinDir() { return STREAMTRAIN_BIN_DIR; }

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess() { Kill(SIGKILL), Wait(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts `args[0]` (a path) with `args`; stdout and stderr are appended to `log`.
  bool Start(const std::vector<std::string>& args, const std::filesystem::path& log) {
    pid_ = SpawnWithLog(args, log);
    return pid_ > 0;
  }

  void Kill(int signal) {
    if (pid_ > 0) ::kill(pid_, signal);
  }

  // Waits for exit; returns the exit status, 128 + signal when killed, -1 if not running.
  int Wait() {
    if (pid_ <= 0) return -1;
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  bool running() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

}  // namespace streamtrain::testing
