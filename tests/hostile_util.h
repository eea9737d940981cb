// Running a reader on a hostile file in a child process with limits: address space capped at
// the current size + a budget (issue #16: < 512 MB above the baseline for files < 1 MB) and a
// wall-clock alarm, reporting how it ended: clean error (and its message), crash, allocation
// failure, or timeout.
#pragma once

#include <c10/util/Exception.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <new>
#include <string>

namespace ewa::test {

struct LimitedRun {
  enum class End { kClean, kNoError, kOutOfMemory, kCrash, kTimeout } end = End::kCrash;
  std::string message;  ///< what() of the error (without backtrace) for kClean
  int signal = 0;
  std::string describe() const {
    switch (end) {
      case End::kClean: return "clean error: " + message;
      case End::kNoError: return "no error";
      case End::kOutOfMemory: return "allocation failed under the address-space cap";
      case End::kCrash: return "crashed with signal " + std::to_string(signal);
      case End::kTimeout: return "still running after the time limit";
    }
    return "?";
  }
};

/// Runs `fn` in a forked child with RLIMIT_AS = current virtual size + `budget_bytes` and an
/// alarm of `seconds`. The child runs LibTorch single-threaded (OpenMP is not fork-safe).
inline LimitedRun run_limited(const std::function<void()>& fn, uint64_t budget_bytes = 512ull << 20,
                              unsigned seconds = 10) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    torch::set_num_threads(1);
    uint64_t pages = 0;
    std::ifstream("/proc/self/statm") >> pages;
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) + budget_bytes;
    setrlimit(RLIMIT_AS, &rl);
    alarm(seconds);
    auto report = [&](char code, const std::string& msg) {
      std::string out = code + msg;
      (void)!write(fds[1], out.data(), out.size());
      close(fds[1]);
      _exit(0);
    };
    try {
      fn();
    } catch (const std::bad_alloc&) {
      report('M', "");
    } catch (const c10::Error& e) {
      const std::string m = e.what_without_backtrace();
      report((m.find("not enough memory") != std::string::npos || m.find("can't allocate memory") != std::string::npos) ? 'M' : 'E', m);
    } catch (const std::exception& e) {
      report('E', e.what());
    }
    report('N', "");
  }
  close(fds[1]);
  std::string buf;
  char chunk[4096];
  ssize_t n;
  while ((n = read(fds[0], chunk, sizeof chunk)) > 0) buf.append(chunk, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  LimitedRun r;
  if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
    r.end = r.signal == SIGALRM ? LimitedRun::End::kTimeout : LimitedRun::End::kCrash;
    return r;
  }
  if (buf.empty()) return r;  // exited without reporting
  r.message = buf.substr(1);
  r.end = buf[0] == 'E'   ? LimitedRun::End::kClean
          : buf[0] == 'M' ? LimitedRun::End::kOutOfMemory
                          : LimitedRun::End::kNoError;
  return r;
}

/// gtest assertion body: `run` ended with one clean line that contains `must_name`.
inline ::testing::AssertionResult fails_cleanly(const LimitedRun& run, const std::string& must_name) {
  if (run.end != LimitedRun::End::kClean) return ::testing::AssertionFailure() << run.describe();
  if (run.message.find('\n') != std::string::npos) {
    return ::testing::AssertionFailure() << "multi-line message: " << run.message;
  }
  if (run.message.find(must_name) == std::string::npos) {
    return ::testing::AssertionFailure() << "message does not name '" << must_name << "': " << run.message;
  }
  return ::testing::AssertionSuccess() << run.message;
}

}  // namespace ewa::test
