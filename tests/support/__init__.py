"""What tests share: fakes of every port, record builders, servers, and helpers for the stack and the emulator."""
