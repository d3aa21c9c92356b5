export default [JSON.stringify(import.meta), Object.getPrototypeOf(import.meta), Object.keys(import.meta), import.meta === import.meta];
