//! Which paths are mount points, from /proc/self/mountinfo. (Being written.)
