export default 1; }); console.log("escaped"); (function(){
