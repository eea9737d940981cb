// `ewa launch --nproc N -- COMMAND...`: starts N local processes with the torchrun
// environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), forwards SIGINT /
// SIGTERM to them, waits, and exits with the first non-zero status.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "commands.h"

namespace ewa::app {

namespace {
std::vector<pid_t> g_children;
std::atomic<int> g_forwarded{0};

extern "C" void ewa_launch_forward(int sig) {
  g_forwarded.store(sig);
  for (pid_t p : g_children) {
    if (p > 0) ::kill(p, sig);
  }
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 29500;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 29500;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

int run_launch(int nproc, std::string master_addr, int master_port, std::vector<std::string> command) {
  if (command.empty()) throw UsageError("launch: give the command after `--`, e.g. ewa launch --nproc 2 -- ewa train cfg.yaml");
  if (command[0] == "ewa") command[0] = self_exe();  // the same binary, wherever it is installed
  if (master_port == 0) master_port = free_port();
  spdlog::info("launching {} processes (MASTER_ADDR={} MASTER_PORT={}): {}", nproc, master_addr, master_port,
               command[0]);
  struct sigaction sa {}, old_int{}, old_term{};
  sa.sa_handler = ewa_launch_forward;
  sigemptyset(&sa.sa_mask);
  g_children.assign(static_cast<size_t>(nproc), 0);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  for (int r = 0; r < nproc; ++r) {
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("launch: fork failed: ") + std::strerror(errno));
    if (pid == 0) {
      sigaction(SIGINT, &old_int, nullptr);
      sigaction(SIGTERM, &old_term, nullptr);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", master_addr.c_str(), 1);
      ::setenv("MASTER_PORT", std::to_string(master_port).c_str(), 1);
      std::vector<char*> argv;
      for (auto& a : command) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      std::fprintf(stderr, "ewa launch: cannot run '%s': %s\n", argv[0], std::strerror(errno));
      std::_Exit(127);
    }
    g_children[static_cast<size_t>(r)] = pid;
  }
  int first_failure = 0;
  int remaining = nproc;
  while (remaining > 0) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    int rank = -1;
    for (int r = 0; r < nproc; ++r) {
      if (g_children[static_cast<size_t>(r)] == pid) rank = r;
    }
    if (rank < 0) continue;
    g_children[static_cast<size_t>(rank)] = 0;
    --remaining;
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code != 0 && first_failure == 0) {
      first_failure = code;
      spdlog::error("rank {} exited with status {}; stopping the other ranks", rank, code);
      for (pid_t p : g_children) {
        if (p > 0) ::kill(p, SIGTERM);
      }
    }
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return first_failure;
}
}  // namespace

void add_launch_command(CLI::App& app, GlobalOptions& global) {
  auto* cmd = app.add_subcommand(
      "launch", "Run N local processes of a command for data-parallel training (torchrun environment)");
  struct Args {
    int nproc = 2;
    std::string master_addr = "127.0.0.1";
    int master_port = 0;
    std::vector<std::string> command;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--nproc", args->nproc, "number of processes")->check(CLI::Range(1, 1024));
  cmd->add_option("--master-addr", args->master_addr, "rendezvous address (default 127.0.0.1)");
  cmd->add_option("--master-port", args->master_port, "rendezvous port (default: a free port)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("command", args->command, "command to run after `--`, e.g. -- ewa train cfg.yaml")
      ->required()
      ->expected(-1);
  cmd->footer("Example: ewa launch --nproc 2 -- ewa train configs/cifar10/cls-vit-ewa.yaml --set run.threads=1\n"
               "Each rank gets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; the status is the first\n"
               "non-zero status of a rank (the others are then stopped with SIGTERM).");
  cmd->callback([args, &global] {
    apply_global_options(global);
    const int status = run_launch(args->nproc, args->master_addr, args->master_port, args->command);
    if (status != 0) {
      std::fflush(stdout);
      std::exit(status);  // the launched command's own status
    }
  });
}

}  // namespace ewa::app
