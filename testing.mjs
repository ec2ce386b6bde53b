import testing from './testing.js'

export const { panic, sleep, hammerCounter } = testing
export default testing
