// A fixed pool of worker threads for splitting one kernel call over the cores.
//
// MLX runs CPU primitives on one thread per stream; the caller of parallel_for takes part in
// the work, so a pool of size P uses P - 1 extra threads. Idle workers sleep at once rather
// than spin: between two products the Python thread builds the next graph and MLX runs the
// small ops, and a spinning worker takes the core they need (measured on 2 cores: a 20000-
// pause spin made a 350M decode step ~4 ms slower than waking a sleeping worker each call).
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mlx_lfm2 {

class ThreadPool {
 public:
  static ThreadPool& instance() {
    static ThreadPool pool(default_size());
    return pool;
  }

  int size() const {
    return static_cast<int>(workers_.size()) + 1;
  }

  // Runs task(i) for i in [0, tasks), on the caller and the workers; returns when all are done.
  void parallel_for(int tasks, const std::function<void(int)>& task) {
    if (tasks <= 1 || workers_.empty()) {
      for (int i = 0; i < tasks; i++) task(i);
      return;
    }
    std::lock_guard<std::mutex> one_call_at_a_time(call_mutex_);
    task_ = &task;
    tasks_ = tasks;
    next_.store(0);
    busy_workers_.store(static_cast<int>(workers_.size()));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    work();
    // Every worker checks in before the next call may reuse the shared state.
    while (busy_workers_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

 private:
  static int default_size() {
    if (const char* value = std::getenv("MLX_LFM2_NUM_THREADS")) return std::max(1, std::atoi(value));
    return std::max(1u, std::thread::hardware_concurrency());
  }

  explicit ThreadPool(int size) {
    for (int i = 1; i < size; i++) workers_.emplace_back([this] { loop(); });
  }

  void work() {
    for (int i; (i = next_.fetch_add(1)) < tasks_;) (*task_)(i);
  }

  void loop() {
    unsigned long seen = 0;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
        seen = generation_.load();
        if (stop_) return;
      }
      work();
      busy_workers_.fetch_sub(1, std::memory_order_release);
    }
  }

  std::vector<std::thread> workers_;
  std::mutex call_mutex_, mutex_;
  std::condition_variable wake_;
  std::atomic<unsigned long> generation_{0};
  std::atomic<int> next_{0}, busy_workers_{0};
  int tasks_ = 0;
  const std::function<void(int)>* task_ = nullptr;
  bool stop_ = false;
};

}  // namespace mlx_lfm2
