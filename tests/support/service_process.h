// ServiceProcess: one of the project's services as a child process that a test can kill
// with any signal and start again with the same arguments, any number of times (the fault
// tests kill -9 ingest, trainer and replicas at random moments). Unlike ChildProcess it can
// wait with a deadline and tells which incarnation is running. Output of every incarnation
// is appended to one log file.
//
// Thread safety: one thread drives it (the tests' main thread).
//
//   ServiceProcess ingest("ingest", {bin / "streamtrain-ingest", "--brokers", b}, dir / "i.log");
//   ingest.Start();  ingest.Kill9();  ingest.Start();  ingest.Stop();  // SIGTERM, exit status
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"

namespace streamtrain::testing {

class ServiceProcess {
 public:
  ServiceProcess(std::string name, std::vector<std::string> args, std::filesystem::path log)
      : name_(std::move(name)), args_(std::move(args)), log_(std::move(log)) {}
  ~ServiceProcess() {
    Signal(SIGKILL);
    WaitFor(std::chrono::seconds(10));
  }
  ServiceProcess(const ServiceProcess&) = delete;
  ServiceProcess& operator=(const ServiceProcess&) = delete;

  // Starts a new incarnation (the previous one must have exited). False if spawn failed.
  bool Start() {
    if (pid_ > 0) return false;
    pid_ = SpawnWithLog(args_, log_);
    if (pid_ <= 0) return false;
    ++incarnation_;
    exit_status_.reset();
    return true;
  }

  void Signal(int signal) {
    if (pid_ > 0) ::kill(pid_, signal);
  }

  // kill -9 and reap; returns the exit status (128 + 9 when the kill landed, the process's
  // own status when it had exited just before).
  int Kill9() {
    Signal(SIGKILL);
    return WaitFor(std::chrono::seconds(30)).value_or(-1);
  }

  // SIGTERM and wait up to `limit`; the exit status, or nullopt (then it is killed).
  std::optional<int> Stop(std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    Signal(SIGTERM);
    auto status = WaitFor(limit);
    if (!status) Kill9();
    return status;
  }

  // Waits up to `limit` for the process to exit; its status (128 + signal when killed), or
  // nullopt while it still runs. Returns the remembered status once it has exited.
  std::optional<int> WaitFor(std::chrono::milliseconds limit) {
    if (pid_ <= 0) return exit_status_;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (true) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_status_;
      }
      if (r < 0 || std::chrono::steady_clock::now() >= deadline) {
        return r < 0 ? std::optional<int>(-1) : std::nullopt;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a child's exit
    }
  }

  // True while the current incarnation has not been reaped (it may have exited already).
  bool running() const { return pid_ > 0; }
  // Exited on its own (not reaped yet counts as running: call WaitFor(0ms) first).
  std::optional<int> exit_status() const { return exit_status_; }
  // 1 for the first Start(), +1 for each restart.
  int incarnation() const { return incarnation_; }
  const std::string& name() const { return name_; }
  const std::filesystem::path& log() const { return log_; }

 private:
  std::string name_;
  std::vector<std::string> args_;
  std::filesystem::path log_;
  pid_t pid_ = -1;
  int incarnation_ = 0;
  std::optional<int> exit_status_;
};

}  // namespace streamtrain::testing
