class AppError extends Error {}
throw new AppError('app failed');
