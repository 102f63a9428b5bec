"""The polyhedral IR: element types, expressions, kernels with isl domains, dependences, and the
loop AST that isl's code generator produces for the backends."""
