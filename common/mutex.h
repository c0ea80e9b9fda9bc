// Mutex, MutexLock and CondVar: std::mutex and std::condition_variable with
// Clang's thread-safety annotations, so that the compiler checks which data
// each mutex guards (-Wthread-safety in the clang build; other compilers
// ignore the annotations). libstdc++'s std::mutex carries none, hence the
// wrapper, as LevelDB's port::Mutex does.
//
//   class Queue {
//     Mutex mutex_;
//     std::deque<Job> jobs_ GUARDED_BY(mutex_);
//     void PopLocked() REQUIRES(mutex_);
//   };
//
// Thread safety: as std::mutex. A CondVar is bound to one Mutex, which its
// waits must hold (not checked by the analysis, which cannot tell the bound
// mutex from others: LevelDB's port::CondVar is the same).
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define IMAGEFS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define IMAGEFS_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) IMAGEFS_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY IMAGEFS_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) IMAGEFS_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) IMAGEFS_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) IMAGEFS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define ACQUIRED_BEFORE(...) IMAGEFS_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define EXCLUDES(...) IMAGEFS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) IMAGEFS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) IMAGEFS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) IMAGEFS_THREAD_ANNOTATION(assert_capability(x))
#define NO_THREAD_SAFETY_ANALYSIS IMAGEFS_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace imagefs {

class CondVar;

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ACQUIRE() { mutex_.lock(); }
  void Unlock() RELEASE() { mutex_.unlock(); }
  // Tells the analysis that the caller holds it (callbacks run under it).
  void AssertHeld() ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mutex_;
};

// Holds a Mutex for its scope; Unlock/Lock let a scope step out for a call
// that must not run under it (a store call, a callback).
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mutex) ACQUIRE(mutex) : mutex_(mutex) { mutex_->Lock(); }
  ~MutexLock() RELEASE() {
    if (held_) mutex_->Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() RELEASE() {
    held_ = false;
    mutex_->Unlock();
  }
  void Lock() ACQUIRE() {
    mutex_->Lock();
    held_ = true;
  }

 private:
  Mutex* const mutex_;
  bool held_ = true;
};

class CondVar {
 public:
  explicit CondVar(Mutex* mutex) : mutex_(mutex) {}
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void Wait() {
    std::unique_lock<std::mutex> lock(mutex_->mutex_, std::adopt_lock);
    changed_.wait(lock);
    lock.release();
  }
  // False when `timeout` passed without a signal (or spuriously).
  bool WaitFor(std::chrono::nanoseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_->mutex_, std::adopt_lock);
    bool signalled = changed_.wait_for(lock, timeout) == std::cv_status::no_timeout;
    lock.release();
    return signalled;
  }
  void Signal() { changed_.notify_one(); }
  void SignalAll() { changed_.notify_all(); }

 private:
  Mutex* const mutex_;
  std::condition_variable changed_;
};

}  // namespace imagefs
