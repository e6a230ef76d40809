"""flask_ext: the Flask extension of geventsio, a drop-in for Flask-SocketIO."""
